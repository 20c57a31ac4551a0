from wgbgp.cli.main import main

main()
