"""Code the tests share (test files never import each other): DSNs built to order
(`dsn`), a clock moved by hand (`clock`), free loopback ports (`net`), a listener
process (`listener`), a sending log with plans (`sending`), the PostgreSQL server
(`postgres`)."""
