from mg_env.cli import main

main()
