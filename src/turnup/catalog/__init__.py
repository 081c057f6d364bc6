"""Product catalog (TMF620): categories, specifications, offerings, prices; YAML publishing."""
