"""The hub's own HTML pages: sign-in, the dashboard shell, and the sections the apps fill in.

``access`` guards the staff pages, ``navigation`` lists the sections (each a URL name its app's page urls
define), ``views`` and ``urls`` serve sign-in, sign-out, password change and the dashboard.
"""
