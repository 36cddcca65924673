-- Whether this role may change the schema: it owns txnpipe's schema (a member of its
-- owner's role), or, while there is none, may create one in this database.
SELECT coalesce((SELECT pg_has_role(n.nspowner, 'MEMBER') FROM pg_namespace n
                 WHERE n.nspname = 'txnpipe'),
                has_database_privilege(current_database(), 'CREATE'))
