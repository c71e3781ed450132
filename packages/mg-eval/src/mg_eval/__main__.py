from mg_eval.cli import main

main()
