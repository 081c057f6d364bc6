"""TMF637 product inventory: the products customers have, each realised by service instances (TMF638)."""
