from resistkit.cli import main

main()
