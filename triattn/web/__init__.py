"""The web page: the A/B pair it runs, its handlers and layout (ui), the model and example menus
(choices), the eviction view and the page's words (pagetext)."""
