"""The residents domain's web console pages: the disclosure desk (市民課), a
resident's access report printable on A4 (:mod:`.pages`)."""
