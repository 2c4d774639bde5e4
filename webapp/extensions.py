"""Flask extensions, created unbound and initialised in create_app."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

import surveys.models  # noqa: F401 - registers every table on the metadata
from surveys.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
#: Storage from ``RATELIMIT_STORAGE_URI`` (memory:// by default, Redis in production).
#: A moving window: "5 per 15 minutes" holds for any 15 minutes, not per clock quarter.
limiter = Limiter(key_func=get_remote_address, strategy="moving-window")
