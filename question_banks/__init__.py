"""The question banks shipped with feedback360 (YAML data; see ``surveys.banks``).

Each ``<key>.yaml`` file here is one bank; ``surveys.banks.get_bank(key)`` loads it.
"""

from pathlib import Path

#: Directory holding the bundled ``*.yaml`` banks.
BANK_DIR: Path = Path(__file__).resolve().parent
