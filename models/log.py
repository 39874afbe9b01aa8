"""The pack's one named logger. Modules log through it; nothing prints."""

import logging

logger = logging.getLogger("atelier")
