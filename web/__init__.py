"""The JavaScript decoder (``kmq.js``, ``mix.js``), the ``<kmq-image>`` element and the viewer page.

No Python here: this file makes ``web/`` the package ``kmq.web``, so that an installed kmq carries the
files that ``kmq view`` serves and ``kmq gallery`` copies (``importlib.resources.files("kmq.web")``).
"""
