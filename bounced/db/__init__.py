"""The database: table models (`tables`), the store's queries and transactions
(`store`) and the schema's migrations (`migrations/`). The only package that talks SQL."""
