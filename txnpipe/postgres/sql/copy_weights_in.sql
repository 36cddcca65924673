COPY weights_in (customer, merchant, kind, weight) FROM STDIN
