"""Product inventory (TMF637): the products customers have, derived from the orders that created them and
the services that realise them. It follows orders and services through their events
(``turnup.product_inventory.consumers``, registered by ``turnup.wiring.wire``); nobody calls it to change.
"""

from turnup.product_inventory.render import render_product
from turnup.product_inventory.services import API, ProductView, derive_status, get_product, products_select

__all__ = ["API", "ProductView", "derive_status", "get_product", "products_select", "render_product"]
