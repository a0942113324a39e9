from astravue_mcp.cli import main

raise SystemExit(main())
