-- A threshold rule over a merchant's aggregates: the touched merchants that meet it.
SELECT __PATTERN__, merchant, '', NULL::int, NULL::int, NULL::int, NULL::float8, NULL::text,
       NULL::int, NULL::int, NULL::text, NULL::int, NULL::int, NULL::float8, NULL::text[],
       NULL::int[], NULL::float8[]
FROM merchant_rows
WHERE __CONDITION__
