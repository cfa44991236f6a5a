"""The Shopify connector (Admin GraphQL API 2026-04 out, order webhooks in) and its mock shop.

Nothing here is imported at runtime except through the ``shopify`` entry point:
``connectors.shopify.connector:ShopifyConnector``.
"""
