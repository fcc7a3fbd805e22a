"""The web forms' adapters: text as people type it ("1,500.50", one item a line, blank rows, uploaded
files) turned into the services' arguments, and the service called. The services stay the authority on
every rule; a refusal names the form's field."""
