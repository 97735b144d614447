from perfdeploy.cli import main

main()
