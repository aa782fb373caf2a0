"""Reading and writing media (images, video, audio, meshes), export formats and rendering."""
