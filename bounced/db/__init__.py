"""The database, the only package that talks SQL: the engine and its transactions
(`database`), the table models (`tables`), one module per repository (`suppression`,
`selections`, `filters`, `reports`, `replay`, `sending`, `inbox`, `retention`), the
PostgreSQL event partitions (`partitions`), the `Store` that holds them, and the
schema's migrations (`migrations/`)."""
