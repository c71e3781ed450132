from mg_serve.cli import main

main()
