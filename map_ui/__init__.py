"""Map rendering (folium/Leaflet), served by the app."""
