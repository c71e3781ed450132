from mg_data.cli import main

main()
