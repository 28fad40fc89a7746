// terminal test comes later
