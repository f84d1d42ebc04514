"""python -m numcnn.cli: the numcnn command line (as python -m numcnn)."""

from . import main

raise SystemExit(main())
