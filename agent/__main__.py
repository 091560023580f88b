"""``python -m glimpser.agent``."""

from glimpser.agent.cli import main

raise SystemExit(main())
