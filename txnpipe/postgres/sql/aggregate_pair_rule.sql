-- A threshold rule over a pair's aggregates: the touched pairs that meet its condition.
SELECT __PATTERN__, merchant, customer, NULL::int, NULL::int, NULL::int, NULL::float8, NULL::text,
       NULL::int, NULL::int, NULL::text, NULL::int, NULL::int, NULL::float8, NULL::text[],
       NULL::int[], NULL::float8[]
FROM pair_rows
WHERE __CONDITION__
