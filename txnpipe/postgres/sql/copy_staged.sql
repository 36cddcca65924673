COPY staged (record, customer, merchant, value, gender, kind) FROM STDIN
