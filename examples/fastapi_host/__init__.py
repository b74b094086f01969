"""A FastAPI + SQLAlchemy helpdesk backend built on cxflow.

``app.create_app()`` builds the application; ``app.app`` is one built from the
environment (``DATABASE_URL``), for ``uvicorn examples.fastapi_host.app:app``.
See README.md in this folder.
"""
