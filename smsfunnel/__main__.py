from smsfunnel.cli import app

app(prog_name="smsfunnel")
