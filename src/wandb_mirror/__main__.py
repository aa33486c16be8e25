from wandb_mirror.cli import main

main()
