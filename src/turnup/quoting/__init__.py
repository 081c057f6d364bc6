"""Quotes (TMF648): catalog-priced lines at customer sites, inventory holds, approval rules and chains,
acceptance into an agreement (``turnup.agreements``) and a product order (``turnup.ordering``)."""
