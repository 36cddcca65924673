CREATE TEMP TABLE weights_in (customer text, merchant text, kind text, weight float8)
ON COMMIT DROP
