// Starts Swagger UI on /docs. A file rather than an inline script, so that the page's CSP allows scripts
// from this server only. The address of the OpenAPI document comes from this script tag's data attribute.
(function () {
  "use strict";
  var script = document.currentScript;
  window.ui = SwaggerUIBundle({
    url: script.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    // Never send the document to an outside validator.
    validatorUrl: null,
    // A bearer token typed into "Authorize" lives in this page only, never in the browser's storage.
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
