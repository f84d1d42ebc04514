"""python -m numcnn: the numcnn command line."""

from .cli import main

raise SystemExit(main())
