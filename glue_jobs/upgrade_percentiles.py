# Placeholder: the Glue PySpark job computing PatId1's percentiles (written separately).
