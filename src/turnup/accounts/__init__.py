"""Customer accounts: customers (organisation or individual), contacts, sites, billing account reference."""
