"""Pages people look at: the report of a run, the daemon's live page, the day's chart on Discord.

`source` reads a database as any reader does, `stats` computes, `figures` and `days` draw with
plotly, `page` assembles one self-contained HTML file, `cli` is `python -m gexbot.report`,
`today` keeps the daemon's current day for its live page, and `png` draws the day for Discord.
"""
