"""The browser target: the static TF.js page, its packer and its static server."""
