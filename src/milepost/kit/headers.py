"""The security headers every HTML response carries (set once, by ``middleware.SecurityHeadersMiddleware``).

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

# The API reference: scripts, style sheets, fonts and images from this server only (the package's own copies
# of Swagger UI and Redoc, started by script files, never an inline script), calls to this server only.
# Swagger UI (/docs) needs nothing more; its icons are data: images.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Redoc (/redoc) writes its styles into style elements at run time (styled-components, with no way to give
# them a nonce from outside the bundle), so its page also allows inline styles; and it runs its search index
# in a worker made from a blob of its own bundle. Scripts from elsewhere stay refused.
REDOC_CSP = DOCS_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace(
    "connect-src 'self';", "connect-src 'self'; worker-src blob:;"
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
