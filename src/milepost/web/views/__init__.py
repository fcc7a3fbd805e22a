"""Read models of the web pages: everything a page shows and which forms it offers, decided here and
only laid out by the templates. One module per page (or staff list); the domains know nothing of them."""
