-- A function role's password, from its own secret. DDL takes no bound parameters: the role
-- is composed as an identifier and the password as a quoted literal (psycopg.sql).
ALTER ROLE {role} PASSWORD {password}
