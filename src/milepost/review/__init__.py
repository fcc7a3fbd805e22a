"""Review context: what a reviewer needs to decide on a delivery (PRODUCT.md, "Delivery, review and
evidence")."""
