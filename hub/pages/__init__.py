"""The hub's own HTML pages: sign-in, the dashboard shell, and the sections the apps fill in.

``access`` answers who may see a staff page, ``navigation`` lists the sections, ``views`` and ``urls``
serve them. An app whose page lands takes over the section's URL name and removes its placeholder (see ``navigation``).
"""
