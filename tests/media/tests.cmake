ls_add_test(test_video_writer media/test_video_writer.c)
