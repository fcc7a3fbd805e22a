"""The security headers every HTML response carries (set once, by ``app.SecurityHeadersMiddleware``).

Pages hold CSRF tokens and private figures: never cached, never framed (clickjacking), never sniffed into
another type, forms post only here, and no other site learns the page's address from a link.
"""

from __future__ import annotations

# What the web pages need: their own scripts and style sheets, nothing inline.
PAGE_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

# Standalone documents (receipts) style themselves inline and load nothing: no scripts, no forms.
DOCUMENT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

# The API's interactive documentation (/docs): Swagger UI from its CDN, started by one inline script.
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src https://cdn.jsdelivr.net; img-src https://fastapi.tiangolo.com data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

# Defaults for every text/html response; a response that sets one of these itself (a receipt's CSP, a
# receipt's "private, no-store") keeps its own.
HTML_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": PAGE_CSP,
}
