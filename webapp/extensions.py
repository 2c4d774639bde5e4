"""Flask extensions, created unbound and initialised in create_app."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

import surveys.models  # noqa: F401 - registers every table on the metadata
from surveys.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
