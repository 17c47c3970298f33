from tabjob.cli.main import main

main()
