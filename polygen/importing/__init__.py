"""Moving an existing site in: inventories made from a spreadsheet or from another system's tree.

* ``csvin``    a CSV/TSV of phones and extensions -> inventory entries (``polygen import csv``)
* ``csvout``   the inventory -> the same CSV shape (``polygen export csv``)
* ``tree``     a provisioning directory (masters, config files, directories) -> each phone's
               effective parameters, its model, the directory entries and the files not used
* ``infer``    effective parameters -> first-class inventory keys plus the settings that keep every
               phone's configuration as it was, with a report of where each parameter went
* ``dialing``  a digit map -> ``site.dialing`` (polygen's generated shape, else the map as written)
* ``keys``     busy lamp fields, a phone's own directory and its key order -> the phone's ``keys:``
* ``defaults`` what a phone has for the parameters polygen always writes when no file sets them
* ``compare``  two effective configurations, parameter by parameter
* ``commit``   checking the result with the full inventory load in a private copy, then writing it
               (new files, or added to an existing inventory with ``polygen.edit``'s edits, which
               keep every other line), passwords only into the secrets file
* ``yamltext`` YAML text for new files

Nothing is written unless the whole result loads without an error.
"""
