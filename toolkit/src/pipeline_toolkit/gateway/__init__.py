"""The local API gateway: the ingest API and the upload page on 127.0.0.1, for the embedded target.

``server`` serves the HTTP API that Terraform deployed (``http_api``), checks tokens as its JWT authorizer
would (``authorizer``) and invokes the function behind it in processes of its own (``functions``); ``page``
serves the upload page. ``pipeline local up`` starts both.
"""
