from avsynth.cli import app

app()
